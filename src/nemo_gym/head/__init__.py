"""Discovery: the head server (``app``) and the client that finds servers by name (``client``)."""
