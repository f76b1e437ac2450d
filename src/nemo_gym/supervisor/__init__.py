"""What ``ng_run`` does: bind ports, start one process per server, wait for health, watch, stop."""
