"""The API server: Kubernetes REST over real etcd."""
