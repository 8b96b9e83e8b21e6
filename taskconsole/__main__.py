from taskconsole.cli import main

main()
