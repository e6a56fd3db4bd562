"""How objects are printed for people: kubectl's columns and ages, shared by the API server's
Table answers and minikubectl."""
