"""Node agent tests: pure table tests, and real ones over network namespaces and CNI plugins."""
