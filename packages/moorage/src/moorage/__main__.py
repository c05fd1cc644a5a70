from moorage.cli.main import main

main(prog_name="moorage")
