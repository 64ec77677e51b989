"""The data sync lab's engines, plain Python: they import the engine API and nothing else of the
project. tables (A, B and where they live), workload (the writes to A), driver (the steps every
scenario shares), events (what the page draws), and one module per way of syncing: naive, copy,
poll, checksum, binlog + cdc (in process), apply + applier (the applier as a process of its own)."""
