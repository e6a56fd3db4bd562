"""HTTP: request parsing, thin handlers, watch serving, discovery, OpenAPI, Tables, the node proxy."""
