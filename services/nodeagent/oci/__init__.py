"""The node's container layer made of OCI parts, as containerd's CRI plugin and runc are.

- `image`: the records (`Image`, `ImageConfig`) and the `ImageStore` interface every part
  shares;
- `reference`: image names normalized as containerd does (`nginx` -> docker.io/library/nginx:latest);
- `store` and `layers`: the node's content-addressed store (blobs, images, layers unpacked with
  their whiteouts as overlayfs expects them), importing oci-archive and docker-archive files;
- `registry`: pulls with the OCI distribution protocol into the store;
- `spec`, `security`, `resources`, `seccomp`: a container's OCI runtime config (config.json),
  as pure functions of the pod, the container and its image;
- `runc`: the thin driver of the OCI runtime binary (runc or crun).
"""
