from donkey.cli.main import main

main()
