"""The ``ng_*`` commands. Each module is one command with a ``main()``; ``params`` holds the
shared parsing of ``+key=value`` arguments into a typed model and the ``+h=true`` help."""
