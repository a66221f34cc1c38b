"""Remote drivers' sessions on the head: see ``session`` (the process) and ``calls``."""
