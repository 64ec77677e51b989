// The sync lab's run-page panels (A and B side by side, the binlog tape, retries, checksum chunks).
