"""minikubectl: the project's own command-line client.

Layers, each only calling the ones below it:

- `main`: argument parsing and the top-level error handler (one line on stderr, exit 1).
- `commands`, `cluster_cmd`: what each sub-command does, in terms of the API client.
- pure helpers with no I/O: `printers` (tables, label and custom columns), `describe` (text),
  `manifests` (parsing files), `lastapplied` (the three-way apply patch),
  `kubeconfig` (choosing a server and namespace), `kinds` (names to resource types),
  `output` (`-o` parsed as kubectl parses it; it reads a template file, nothing else),
  `jsonpath` (kubectl's JSONPath dialect), `sorting` (`--sort-by`'s order), `gotext`
  (values printed as Go prints them, which kubectl's output shows).
- `transport`: the only module that talks HTTP to the API server.
"""

__version__ = "0.1.0"
