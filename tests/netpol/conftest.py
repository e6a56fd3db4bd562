from tests.proxy.conftest import lab as lab  # the network-namespace lab the proxy's tests use
