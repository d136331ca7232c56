"""One module per ``uok`` sub-command, each listed in
:data:`uok.adapters.cli.registry.COMMANDS` and imported only when it runs."""
