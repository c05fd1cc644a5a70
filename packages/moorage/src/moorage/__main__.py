from moorage.cli import main

main(prog_name="moorage")
