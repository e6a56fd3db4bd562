"""Golden tests: the whole rendered ruleset for representative cluster states.

The expected texts were reviewed rule by rule against kube-proxy's iptables
proxier output.  Chain names in the article and UDP cases are the ones real
kube-proxy printed for the same service ports (see test_chain_names.py).
"""
from __future__ import annotations

import pytest

from services.proxy.model import build_snapshot
from services.proxy.rules import NodeSettings, render
from tests.proxy.cases import ALL_CASES, ARTICLE_MYSVC, ClusterState

SETTINGS = NodeSettings(node_name="node-a", cluster_cidr="10.244.0.0/16")

EXPECTED: dict[str, str] = {
    "one-service-three-endpoints": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-BM6F4AVTDKG47F3K - [0:0]
:KUBE-SEP-CMSFOBEB7HHZOTBZ - [0:0]
:KUBE-SEP-VVWLMARALSB3FCZF - [0:0]
:KUBE-SEP-XGAC3VXZG7B73WCD - [0:0]
-A KUBE-SERVICES -m comment --comment "default/mysvc cluster IP" -m tcp -p tcp -d 10.96.62.22/32 --dport 8080 -j KUBE-SVC-BM6F4AVTDKG47F3K
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc cluster IP" -m tcp -p tcp -d 10.96.62.22/32 --dport 8080 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.1.2:8080" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-CMSFOBEB7HHZOTBZ
-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.2.2:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-VVWLMARALSB3FCZF
-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.2.3:8080" -j KUBE-SEP-XGAC3VXZG7B73WCD
-A KUBE-SEP-CMSFOBEB7HHZOTBZ -m comment --comment default/mysvc -s 10.244.1.2/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-CMSFOBEB7HHZOTBZ -m comment --comment default/mysvc -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080
-A KUBE-SEP-VVWLMARALSB3FCZF -m comment --comment default/mysvc -s 10.244.2.2/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-VVWLMARALSB3FCZF -m comment --comment default/mysvc -m tcp -p tcp -j DNAT --to-destination 10.244.2.2:8080
-A KUBE-SEP-XGAC3VXZG7B73WCD -m comment --comment default/mysvc -s 10.244.2.3/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-XGAC3VXZG7B73WCD -m comment --comment default/mysvc -m tcp -p tcp -j DNAT --to-destination 10.244.2.3:8080
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
    "no-endpoints-reject": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp -d 10.96.0.50/32 --dport 80 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
    "nodeport": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-EXT-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SEP-AFGSLHOD2HFNCBX4 - [0:0]
:KUBE-SEP-3OLK2YUW6LHBC4UX - [0:0]
-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.60/32 --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-CDGGSHYLG3RE2FKL
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-CDGGSHYLG3RE2FKL -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.60/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.5:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-AFGSLHOD2HFNCBX4
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.6:8080" -j KUBE-SEP-3OLK2YUW6LHBC4UX
-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -s 10.244.1.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SEP-3OLK2YUW6LHBC4UX -m comment --comment default/web:http -s 10.244.2.6/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-3OLK2YUW6LHBC4UX -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.6:8080
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-SERVICES -m comment --comment "default/idle:http has no endpoints" -m tcp -p tcp -d 10.96.0.61/32 --dport 81 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/idle:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30081 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
    "udp": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-TCOU7JCQXEZGVUNU - [0:0]
:KUBE-SEP-LPGSDLJ3FDW46N4W - [0:0]
:KUBE-SEP-IRMT6RY5EEEBXDAY - [0:0]
-A KUBE-SERVICES -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp -p udp -d 10.96.0.10/32 --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp -p udp -d 10.96.0.10/32 --dport 53 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.244.0.5:53" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-LPGSDLJ3FDW46N4W
-A KUBE-SVC-TCOU7JCQXEZGVUNU -m comment --comment "kube-system/kube-dns:dns -> 10.244.0.6:53" -j KUBE-SEP-IRMT6RY5EEEBXDAY
-A KUBE-SEP-LPGSDLJ3FDW46N4W -m comment --comment kube-system/kube-dns:dns -s 10.244.0.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-LPGSDLJ3FDW46N4W -m comment --comment kube-system/kube-dns:dns -m udp -p udp -j DNAT --to-destination 10.244.0.5:53
-A KUBE-SEP-IRMT6RY5EEEBXDAY -m comment --comment kube-system/kube-dns:dns -s 10.244.0.6/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-IRMT6RY5EEEBXDAY -m comment --comment kube-system/kube-dns:dns -m udp -p udp -j DNAT --to-destination 10.244.0.6:53
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
    "terminating-endpoints": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-FLX6CX6YGZ2GEJ6N - [0:0]
:KUBE-SEP-UMQO2XX46IRDGG46 - [0:0]
:KUBE-SVC-O2VCFLFFGX6WTBUO - [0:0]
:KUBE-SEP-2EBXJK2VFDPQETEU - [0:0]
-A KUBE-SERVICES -m comment --comment "default/draining cluster IP" -m tcp -p tcp -d 10.96.0.71/32 --dport 80 -j KUBE-SVC-FLX6CX6YGZ2GEJ6N
-A KUBE-SERVICES -m comment --comment "default/rolling cluster IP" -m tcp -p tcp -d 10.96.0.70/32 --dport 80 -j KUBE-SVC-O2VCFLFFGX6WTBUO
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SVC-FLX6CX6YGZ2GEJ6N -m comment --comment "default/draining cluster IP" -m tcp -p tcp -d 10.96.0.71/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-FLX6CX6YGZ2GEJ6N -m comment --comment "default/draining -> 10.244.1.20:8080" -j KUBE-SEP-UMQO2XX46IRDGG46
-A KUBE-SEP-UMQO2XX46IRDGG46 -m comment --comment default/draining -s 10.244.1.20/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-UMQO2XX46IRDGG46 -m comment --comment default/draining -m tcp -p tcp -j DNAT --to-destination 10.244.1.20:8080
-A KUBE-SVC-O2VCFLFFGX6WTBUO -m comment --comment "default/rolling cluster IP" -m tcp -p tcp -d 10.96.0.70/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-O2VCFLFFGX6WTBUO -m comment --comment "default/rolling -> 10.244.1.10:8080" -j KUBE-SEP-2EBXJK2VFDPQETEU
-A KUBE-SEP-2EBXJK2VFDPQETEU -m comment --comment default/rolling -s 10.244.1.10/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-2EBXJK2VFDPQETEU -m comment --comment default/rolling -m tcp -p tcp -j DNAT --to-destination 10.244.1.10:8080
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
    "two-services": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-FYPS7PEFRG2TXWEY - [0:0]
:KUBE-SEP-4QFIQF6BDAVLOKC6 - [0:0]
:KUBE-SVC-4W74AMKD7BQ64LGF - [0:0]
:KUBE-SEP-I2MM2VLCD6ZLSLWB - [0:0]
-A KUBE-SERVICES -m comment --comment "prod/alpha cluster IP" -m tcp -p tcp -d 10.96.0.80/32 --dport 80 -j KUBE-SVC-FYPS7PEFRG2TXWEY
-A KUBE-SERVICES -m comment --comment "prod/zeta cluster IP" -m tcp -p tcp -d 10.96.0.90/32 --dport 80 -j KUBE-SVC-4W74AMKD7BQ64LGF
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SVC-FYPS7PEFRG2TXWEY -m comment --comment "prod/alpha cluster IP" -m tcp -p tcp -d 10.96.0.80/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-FYPS7PEFRG2TXWEY -m comment --comment "prod/alpha -> 10.244.3.8:8080" -j KUBE-SEP-4QFIQF6BDAVLOKC6
-A KUBE-SEP-4QFIQF6BDAVLOKC6 -m comment --comment prod/alpha -s 10.244.3.8/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-4QFIQF6BDAVLOKC6 -m comment --comment prod/alpha -m tcp -p tcp -j DNAT --to-destination 10.244.3.8:8080
-A KUBE-SVC-4W74AMKD7BQ64LGF -m comment --comment "prod/zeta cluster IP" -m tcp -p tcp -d 10.96.0.90/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-4W74AMKD7BQ64LGF -m comment --comment "prod/zeta -> 10.244.3.9:9090" -j KUBE-SEP-I2MM2VLCD6ZLSLWB
-A KUBE-SEP-I2MM2VLCD6ZLSLWB -m comment --comment prod/zeta -s 10.244.3.9/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-I2MM2VLCD6ZLSLWB -m comment --comment prod/zeta -m tcp -p tcp -j DNAT --to-destination 10.244.3.9:9090
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
    "named-ports": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-HMG3V2FJFP2BCWQZ - [0:0]
:KUBE-SEP-UHKDRUPNUISQ4S6J - [0:0]
:KUBE-SEP-E62RI73EMUEUGVQT - [0:0]
:KUBE-SVC-KEGXTB7QME74AEFI - [0:0]
:KUBE-SEP-HELIZNS56KXBSVBJ - [0:0]
:KUBE-SEP-UQQ5S2IAJLL4PPAB - [0:0]
-A KUBE-SERVICES -m comment --comment "default/app:http cluster IP" -m tcp -p tcp -d 10.96.0.100/32 --dport 80 -j KUBE-SVC-HMG3V2FJFP2BCWQZ
-A KUBE-SERVICES -m comment --comment "default/app:metrics cluster IP" -m tcp -p tcp -d 10.96.0.100/32 --dport 9100 -j KUBE-SVC-KEGXTB7QME74AEFI
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SVC-HMG3V2FJFP2BCWQZ -m comment --comment "default/app:http cluster IP" -m tcp -p tcp -d 10.96.0.100/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-HMG3V2FJFP2BCWQZ -m comment --comment "default/app:http -> 10.244.4.2:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UHKDRUPNUISQ4S6J
-A KUBE-SVC-HMG3V2FJFP2BCWQZ -m comment --comment "default/app:http -> 10.244.4.3:8081" -j KUBE-SEP-E62RI73EMUEUGVQT
-A KUBE-SEP-UHKDRUPNUISQ4S6J -m comment --comment default/app:http -s 10.244.4.2/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-UHKDRUPNUISQ4S6J -m comment --comment default/app:http -m tcp -p tcp -j DNAT --to-destination 10.244.4.2:8080
-A KUBE-SEP-E62RI73EMUEUGVQT -m comment --comment default/app:http -s 10.244.4.3/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-E62RI73EMUEUGVQT -m comment --comment default/app:http -m tcp -p tcp -j DNAT --to-destination 10.244.4.3:8081
-A KUBE-SVC-KEGXTB7QME74AEFI -m comment --comment "default/app:metrics cluster IP" -m tcp -p tcp -d 10.96.0.100/32 --dport 9100 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-KEGXTB7QME74AEFI -m comment --comment "default/app:metrics -> 10.244.4.2:9102" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-HELIZNS56KXBSVBJ
-A KUBE-SVC-KEGXTB7QME74AEFI -m comment --comment "default/app:metrics -> 10.244.4.3:9103" -j KUBE-SEP-UQQ5S2IAJLL4PPAB
-A KUBE-SEP-HELIZNS56KXBSVBJ -m comment --comment default/app:metrics -s 10.244.4.2/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-HELIZNS56KXBSVBJ -m comment --comment default/app:metrics -m tcp -p tcp -j DNAT --to-destination 10.244.4.2:9102
-A KUBE-SEP-UQQ5S2IAJLL4PPAB -m comment --comment default/app:metrics -s 10.244.4.3/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-UQQ5S2IAJLL4PPAB -m comment --comment default/app:metrics -m tcp -p tcp -j DNAT --to-destination 10.244.4.3:9103
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
    "external-and-load-balancer-ips": """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-EXT-JSLCNGWSGB5JPS5Q - [0:0]
:KUBE-SVC-JSLCNGWSGB5JPS5Q - [0:0]
:KUBE-SEP-RZ2QWLR55GE4AFV2 - [0:0]
:KUBE-SVC-CSDRHODO5P6PB3HI - [0:0]
:KUBE-SEP-4YW3ER4GEAZA3QPN - [0:0]
-A KUBE-SERVICES -m comment --comment "default/lb:http cluster IP" -m tcp -p tcp -d 10.96.0.110/32 --dport 80 -j KUBE-SVC-JSLCNGWSGB5JPS5Q
-A KUBE-SERVICES -m comment --comment "default/lb:http external IP" -m tcp -p tcp -d 192.0.2.10/32 --dport 80 -j KUBE-EXT-JSLCNGWSGB5JPS5Q
-A KUBE-SERVICES -m comment --comment "default/lb:http loadbalancer IP" -m tcp -p tcp -d 10.250.0.200/32 --dport 80 -j KUBE-EXT-JSLCNGWSGB5JPS5Q
-A KUBE-SERVICES -m comment --comment "default/proxied cluster IP" -m tcp -p tcp -d 10.96.0.112/32 --dport 82 -j KUBE-SVC-CSDRHODO5P6PB3HI
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-NODEPORTS -m comment --comment default/lb:http -m tcp -p tcp --dport 30110 -j KUBE-EXT-JSLCNGWSGB5JPS5Q
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-EXT-JSLCNGWSGB5JPS5Q -m comment --comment "masquerade traffic for default/lb:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-JSLCNGWSGB5JPS5Q -j KUBE-SVC-JSLCNGWSGB5JPS5Q
-A KUBE-SVC-JSLCNGWSGB5JPS5Q -m comment --comment "default/lb:http cluster IP" -m tcp -p tcp -d 10.96.0.110/32 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-JSLCNGWSGB5JPS5Q -m comment --comment "default/lb:http -> 10.244.1.5:8080" -j KUBE-SEP-RZ2QWLR55GE4AFV2
-A KUBE-SEP-RZ2QWLR55GE4AFV2 -m comment --comment default/lb:http -s 10.244.1.5/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-RZ2QWLR55GE4AFV2 -m comment --comment default/lb:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080
-A KUBE-SVC-CSDRHODO5P6PB3HI -m comment --comment "default/proxied cluster IP" -m tcp -p tcp -d 10.96.0.112/32 --dport 82 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-CSDRHODO5P6PB3HI -m comment --comment "default/proxied -> 10.244.1.6:82" -j KUBE-SEP-4YW3ER4GEAZA3QPN
-A KUBE-SEP-4YW3ER4GEAZA3QPN -m comment --comment default/proxied -s 10.244.1.6/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-4YW3ER4GEAZA3QPN -m comment --comment default/proxied -m tcp -p tcp -j DNAT --to-destination 10.244.1.6:82
COMMIT
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-SERVICES -m comment --comment "default/idle has no endpoints" -m tcp -p tcp -d 10.96.0.111/32 --dport 81 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/idle has no endpoints" -m tcp -p tcp -d 192.0.2.11/32 --dport 81 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/idle has no endpoints" -m tcp -p tcp -d 10.250.0.201/32 --dport 81 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
""",
}


@pytest.mark.parametrize("state", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_rendered_ruleset(state: ClusterState) -> None:
    snapshot = build_snapshot(state.services, state.slices, node_name=SETTINGS.node_name)
    assert render(snapshot, SETTINGS).restore_text() == EXPECTED[state.id]


@pytest.mark.parametrize("state", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_render_ignores_input_order(state: ClusterState) -> None:
    forward = build_snapshot(state.services, state.slices, node_name="node-a")
    backward = build_snapshot(state.services[::-1], state.slices[::-1], node_name="node-a")
    assert render(forward, SETTINGS).restore_text() == render(backward, SETTINGS).restore_text()


def test_without_cluster_cidr_or_random_fully() -> None:
    """No cluster CIDR: no off-cluster MARK rule; old iptables: plain MASQUERADE."""
    settings = NodeSettings(node_name="node-a", cluster_cidr=None, masquerade_random_fully=False,
                            masquerade_mark="0x8000")
    snapshot = build_snapshot(ARTICLE_MYSVC.services, ARTICLE_MYSVC.slices, node_name="node-a")
    nat = render(snapshot, settings).nat.chains
    assert nat["KUBE-SVC-BM6F4AVTDKG47F3K"] == (
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.1.2:8080" '
        "-m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-CMSFOBEB7HHZOTBZ",
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.2.2:8080" '
        "-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-VVWLMARALSB3FCZF",
        '-A KUBE-SVC-BM6F4AVTDKG47F3K -m comment --comment "default/mysvc -> 10.244.2.3:8080" '
        "-j KUBE-SEP-XGAC3VXZG7B73WCD",
    )
    assert nat["KUBE-POSTROUTING"] == (
        "-A KUBE-POSTROUTING -m mark ! --mark 0x8000/0x8000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x8000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE',
    )
    assert nat["KUBE-MARK-MASQ"] == ("-A KUBE-MARK-MASQ -j MARK --or-mark 0x8000",)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, []),
        (2, ["0.5000000000"]),
        (4, ["0.2500000000", "0.3333333333", "0.5000000000"]),
        (7, ["0.1428571429", "0.1666666667", "0.2000000000", "0.2500000000", "0.3333333333",
             "0.5000000000"]),
    ],
    ids=["one", "two", "four", "seven"],
)
def test_even_spread_probabilities(count: int, expected: list[str]) -> None:
    """1/n, 1/(n-1), ..., 1/2 and an unconditional last rule give each endpoint 1/n."""
    from tests.proxy.objects import endpoint, endpoint_slice, port, service, slice_port

    svc = service("many", "10.96.1.1", [port(80)])
    eps = endpoint_slice("many", [endpoint(f"10.244.9.{i + 1}") for i in range(count)], [slice_port(80)])
    ruleset = render(build_snapshot([svc], [eps], node_name="node-a"), SETTINGS)
    svc_chain = next(c for c in ruleset.nat.chains if c.startswith("KUBE-SVC-"))
    jumps = [r for r in ruleset.nat.chains[svc_chain] if "-j KUBE-SEP-" in r]
    assert len(jumps) == count
    assert [r.split("--probability ")[1].split()[0] for r in jumps[:-1]] == expected
    assert "statistic" not in jumps[-1]
