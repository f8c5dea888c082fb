"""On-disk state: atomic writes, the fsync'd session journal, the session index. No torch."""
