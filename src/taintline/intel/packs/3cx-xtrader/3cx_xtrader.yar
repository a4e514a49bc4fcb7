/*
  YARA rules for the 2023 X_TRADER -> 3CX supply-chain compromise, written for taintline from
  published facts (marker bytes, key strings, file layouts named in vendor reports). No rule
  text is copied from other rule sets. Each rule says which published fact it encodes.

  No rule imports a module: the PE certificate table (data directory 4) is read from the
  headers (MZ, "PE\0\0" at e_lfanew, the optional header's magic, NumberOfRvaAndSizes and
  the directory's file offset and size: e_lfanew + 152/156 in PE32, + 168/172 in PE32+).
  Importing "pe" would make yara-x build the module's output for every file and container
  member scanned, PE or not: about 90 us each, a quarter of the scan of a tree of small jar
  members (benchmarks/bench_scan_tree.py).
*/

rule taintline_3cx_feedface_in_certificate_table
{
    meta:
        description = "PE whose Authenticode certificate table holds the doubled FEEDFACE marker that precedes the encrypted payload in the trojanized d3dcompiler_47.dll"
        fact = "ffmpeg.dll searches d3dcompiler_47.dll for FE ED FA CE; the payload sits in the signature padding (CVE-2013-3900)"
        reference = "https://github.com/elastic/protections-artifacts/blob/main/yara/rules/Windows_Trojan_SuddenIcon.yar"
        author = "taintline"
        severity = "high"
    strings:
        $marker = { FE ED FA CE FE ED FA CE }
    condition:
        uint16(0) == 0x5A4D and uint32(uint32(0x3C)) == 0x00004550 and
        (
            (uint16(uint32(0x3C) + 24) == 0x10B and uint32(uint32(0x3C) + 116) > 4 and
             uint32(uint32(0x3C) + 156) > 0 and
             for any i in (1..#marker) : (
                 @marker[i] >= uint32(uint32(0x3C) + 152) and
                 @marker[i] + 8 <= uint32(uint32(0x3C) + 152) + uint32(uint32(0x3C) + 156)
             )) or
            (uint16(uint32(0x3C) + 24) == 0x20B and uint32(uint32(0x3C) + 132) > 4 and
             uint32(uint32(0x3C) + 172) > 0 and
             for any i in (1..#marker) : (
                 @marker[i] >= uint32(uint32(0x3C) + 168) and
                 @marker[i] + 8 <= uint32(uint32(0x3C) + 168) + uint32(uint32(0x3C) + 172)
             ))
        )
}

rule taintline_3cx_ico_base64_after_iend
{
    meta:
        description = "ICO file whose PNG image ends (IEND chunk) and is followed by '$' and a base64 blob, the way the IconStorages icons carried encrypted C2 URLs"
        fact = "after the PNG IEND chunk comes 0x24 and base64 data in the last ~500 bytes of icons under 120 KB"
        reference = "https://www.volexity.com/blog/2023/03/30/3cx-supply-chain-compromise-leads-to-iconic-incident/"
        author = "taintline"
        severity = "high"
    strings:
        $tail = /IEND\xAE\x42\x60\x82\$[A-Za-z0-9+\/]{40,}={0,2}/
    condition:
        uint32(0) == 0x00010000 and filesize < 120KB and $tail
}

rule taintline_3cx_rc4_key
{
    meta:
        description = "Executable holding the static RC4 key the trojanized ffmpeg.dll uses to decrypt the payload from d3dcompiler_47.dll"
        fact = "RC4 key 3jB(2bsG#@c7"
        reference = "https://github.com/Neo23x0/signature-base"
        author = "taintline"
        severity = "high"
    strings:
        $key = "3jB(2bsG#@c7" ascii wide
    condition:
        (uint16(0) == 0x5A4D or uint32(0) == 0xFEEDFACF or uint32(0) == 0xFEEDFACE or
         uint32be(0) == 0xCAFEBABE or uint32be(0) == 0x7F454C46) and $key
}

rule taintline_3cx_iconic_loader_strings
{
    meta:
        description = "Executable naming the __tutma cookie together with the raw.githubusercontent.com IconStorages icon URL (ICONIC / SUDDENICON loader)"
        fact = "the loader fetches raw.githubusercontent.com/IconStorages/images/main/icon%d.ico and talks to C2 with a __tutma cookie"
        reference = "https://www.volexity.com/blog/2023/03/30/3cx-supply-chain-compromise-leads-to-iconic-incident/"
        author = "taintline"
        severity = "critical"
    strings:
        $cookie = "__tutma" ascii wide
        $icons = "raw.githubusercontent.com/IconStorages/images" ascii wide nocase
    condition:
        (uint16(0) == 0x5A4D or uint32(0) == 0xFEEDFACF or uint32be(0) == 0xCAFEBABE) and
        $cookie and $icons
}

rule taintline_3cx_macos_updateagent_strings
{
    meta:
        description = "Mach-O holding the UpdateAgent exfiltration markers: 3cx_auth_id, __tutma=true and the sbmsa.wiki endpoint"
        fact = "UpdateAgent POSTs 3cx_auth_id=...;3cx_auth_token_content=...;__tutma=true to https://sbmsa.wiki/blog/_insert"
        reference = "https://github.com/Neo23x0/signature-base"
        author = "taintline"
        severity = "critical"
    strings:
        $id = "3cx_auth_id" ascii
        $cookie = "__tutma=true" ascii
        $host = "sbmsa.wiki" ascii
    condition:
        (uint32(0) == 0xFEEDFACF or uint32be(0) == 0xCAFEBABE) and 2 of them
}

rule taintline_xtrader_tt_certificate
{
    meta:
        description = "PE carrying the Trading Technologies code-signing certificate (serial 00 85 38 A6 C5 01 8F 50 FC) used on the trojanized X_TRADER installer; informational on its own, check the signing time against X_TRADER's end of life (early 2020)"
        fact = "TT certificate serial bytes 00 85 38 A6 C5 01 8F 50 FC, subject Trading Technologies International, Inc"
        reference = "https://github.com/Neo23x0/signature-base"
        author = "taintline"
        severity = "medium"
    strings:
        $serial = { 02 09 00 85 38 A6 C5 01 8F 50 FC }
        $subject = "Trading Technologies International, Inc" ascii
    condition:
        uint16(0) == 0x5A4D and uint32(uint32(0x3C)) == 0x00004550 and
        (
            (uint16(uint32(0x3C) + 24) == 0x10B and uint32(uint32(0x3C) + 116) > 4 and
             uint32(uint32(0x3C) + 156) > 0) or
            (uint16(uint32(0x3C) + 24) == 0x20B and uint32(uint32(0x3C) + 132) > 4 and
             uint32(uint32(0x3C) + 172) > 0)
        ) and
        $serial and $subject
}
