from gateway.cli.entry import main

main()
