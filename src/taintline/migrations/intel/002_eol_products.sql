-- End-of-life data in every published shape: end of active support, the latest release's
-- date, LTS, the file each cycle was read from; and how to recognise a product (names,
-- package URLs, CPEs) in inventories and SBOMs.
ALTER TABLE eol_cycles ADD COLUMN eoas_date DATE;
ALTER TABLE eol_cycles ADD COLUMN eoas_flag BOOLEAN;
ALTER TABLE eol_cycles ADD COLUMN latest_date DATE;
ALTER TABLE eol_cycles ADD COLUMN lts BOOLEAN;
ALTER TABLE eol_cycles ADD COLUMN origin VARCHAR;

CREATE TABLE eol_products (
    product VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    title VARCHAR,
    names VARCHAR[],
    purls VARCHAR[],
    cpes VARCHAR[],
    origin VARCHAR,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (product, source)
);
