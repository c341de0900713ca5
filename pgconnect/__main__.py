from pgconnect.cli import main

main()
