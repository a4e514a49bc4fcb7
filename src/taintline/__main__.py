from taintline.cli.main import run

run()
