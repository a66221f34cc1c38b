from manta._private.client.session import main

main()
