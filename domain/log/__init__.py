"""The event log as the domain sees it: how events become stored records
(:mod:`~uok.domain.log.codec`), the hash chain that makes the log
tamper-evident (:mod:`~uok.domain.log.chain`) and the store port adapters
implement (:mod:`~uok.domain.log.store`). No driver lives here."""
