#!/usr/bin/env python3
# Regenerates the case files of this folder: python3 engine/plan/testdata/netpol/generate.py engine/plan/testdata/netpol
# Writes engine/plan/testdata/netpol/*.yaml: each case transcribes one e2e test of
# kubernetes/kubernetes test/e2e/network/netpol/network_policy.go; the expected tables are
# computed from the transcribed Expect* calls exactly as reachability.go/truthtable.go do.
import yaml, os, re, sys

OUT = sys.argv[1]
SRC = "kubernetes/kubernetes test/e2e/network/netpol/network_policy.go"
NS = "kubernetes.io/metadata.name"

class Peer:
    def __init__(self, ns="", pod=""): self.ns, self.pod = ns, pod
    def matches(self, p):
        n, q = p.split("/")
        return (self.ns == "" or self.ns == n) and (self.pod == "" or self.pod == q)

class R:
    def __init__(self, pods):
        self.pods = pods
        self.t = {(f, t): True for f in pods for t in pods}
    def ExpectPeer(self, a, b, v):
        for f in self.pods:
            if a.matches(f):
                for t in self.pods:
                    if b.matches(t): self.t[(f, t)] = v
    def Expect(self, f, t, v): self.t[(f, t)] = v
    def ExpectAllIngress(self, p, v):
        for f in self.pods: self.t[(f, p)] = v
    def ExpectAllEgress(self, p, v):
        for t in self.pods: self.t[(p, t)] = v
    def table(self):
        w = max(len(p) for p in self.pods)
        rows = [" ".join(["-".ljust(w)] + [p.ljust(w) for p in self.pods]).rstrip()]
        for f in self.pods:
            rows.append(" ".join([f.ljust(w)] + [("." if self.t[(f, t)] else "X").ljust(w) for t in self.pods]).rstrip())
        return "\n".join(rows) + "\n"

def probe(pods, port, proto, calls):
    r = R(pods)
    env = {"Peer": Peer, "true": True, "false": False}
    for c in calls:
        name, args = re.match(r"(\w+)\((.*)\)$", c).groups()
        eval(f"r.{name}({args})", env | {"r": r})
    return {"port": port, "protocol": proto, "e2e": calls, "expect": r.table()}

def sel(labels=None, exprs=None):
    s = {}
    if labels: s["matchLabels"] = labels
    if exprs: s["matchExpressions"] = exprs
    return s

def pol(name, ns, selector, ingress=None, egress=None, types=None):
    spec = {"podSelector": selector}
    t = []
    if ingress is not None: spec["ingress"] = ingress; t.append("Ingress")
    if egress is not None: spec["egress"] = egress; t.append("Egress")
    spec["policyTypes"] = types if types is not None else t
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}

def ns_is(n): return {"namespaceSelector": sel({NS: n})}
def pod_is(p): return {"podSelector": sel({"pod": p})}
def expr(k, op, vals): return {"key": k, "operator": op, "values": vals}

cases = []
def case(slug, name, pods, ports, protocols, steps, ips=None, context="NetworkPolicy between server and client", source=SRC):
    c = {"name": name, "context": context, "source": source, "pods": pods, "ports": ports, "protocols": protocols}
    if ips: c["ips"] = ips
    c["steps"] = steps
    cases.append((slug, c))

def step(policies, probes, what=None, namespace_labels=None, pod_labels=None):
    s = {}
    if what: s["what"] = what
    if namespace_labels: s["namespace_labels"] = namespace_labels
    if pod_labels: s["pod_labels"] = pod_labels
    s["policies"] = policies
    s["probes"] = probes
    return s

def simple(slug, name, pods, port, proto, policies, calls, **kw):
    case(slug, name, pods, [port], [proto], [step(policies, [probe(pods, port, proto, calls)])], **kw)

P = lambda *p: list(p)
T = "TCP"
A = sel({"pod": "a"})

for proto, ctx, pre in [(T, "NetworkPolicy between server and client", ""),
                        ("UDP", "NetworkPolicy between server and client using UDP", "udp-"),
                        ("SCTP", "NetworkPolicy between server and client using SCTP", "sctp-")]:
    pods = P("x/a", "x/b", "y/a", "y/b")
    simple(pre + "default-deny-ingress", "should support a 'default-deny-ingress' policy", pods, 80, proto,
           [pol("deny-ingress" if proto == T else "deny-all", "x", {}, ingress=[])],
           ['ExpectPeer(Peer(), Peer("x"), false)'], context=ctx)
    pods = P("x/a", "x/b", "y/a", "y/b", "z/a") if proto == T else P("x/a", "x/b", "y/a", "z/a")
    calls = ['ExpectPeer(Peer("x"), Peer("x", "a"), false)']
    if proto == T: calls.append('ExpectPeer(Peer("y"), Peer("x", "a"), true)')
    calls.append('ExpectPeer(Peer("z"), Peer("x", "a"), false)')
    simple(pre + "ports", "should enforce policy based on Ports", pods, 81, proto,
           [pol("allow-client-a-via-ns-selector" if proto == T else "allow-ingress-on-port-81-ns-x", "x", A,
                ingress=[{"from": [ns_is("y")], "ports": [{"port": 81, "protocol": proto}]}])],
           calls, context=ctx)
    pods = P("x/a", "x/b", "y/a", "y/b", "z/a") if proto == T else P("x/a", "x/b", "y/a")
    simple(pre + "pod-in-other-namespace-by-pod-and-namespace-selector",
           "should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
           pods, 80, proto,
           [pol("allow-ns-y-pod-a-via-namespace-pod-selector", "x", A,
                ingress=[{"from": [{"namespaceSelector": sel({NS: "y"}), "podSelector": sel({"pod": "a"})}]}])],
           ['ExpectAllIngress("x/a", false)', 'Expect("y/a", "x/a", true)'], context=ctx)

pods = P("x/a", "x/b", "y/a")
simple("default-deny-all", "should support a 'default-deny-all' policy", pods, 80, T,
       [pol("deny-all", "x", {}, ingress=[], egress=[])],
       ['ExpectPeer(Peer(), Peer("x"), false)', 'ExpectPeer(Peer("x"), Peer(), false)'])
pods = P("x/a", "x/b", "x/c", "y/a")
simple("pod-selector-within-namespace", "should enforce policy to allow traffic from pods within server namespace based on PodSelector",
       pods, 80, T, [pol("x-a-allows-x-b", "x", A, ingress=[{"from": [pod_is("b")]}])],
       ['ExpectAllIngress("x/a", false)', 'Expect("x/b", "x/a", true)'])
pods = P("x/a", "x/b", "y/a")
simple("ingress-for-a-target", "should enforce policy to allow ingress traffic for a target", pods, 80, T,
       [pol("deny-all", "x", {}, ingress=[]),
        pol("allow-all-to-a", "x", A, ingress=[{"from": [{"podSelector": {}, "namespaceSelector": {}}]}])],
       ['ExpectAllIngress("x/a", true)', 'ExpectAllIngress("x/b", false)'])
pods = P("x/a", "x/b", "y/a", "z/a")
simple("ingress-from-all-namespaces", "should enforce policy to allow ingress traffic from pods in all namespaces", pods, 80, T,
       [pol("allow-from-another-ns", "x", A, ingress=[{"from": [{"namespaceSelector": {}}]}])], [])
simple("only-from-other-namespace", "should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
       pods, 80, T, [pol("allow-client-a-via-ns-selector", "x", A, ingress=[{"from": [ns_is("y")]}])],
       ['ExpectPeer(Peer("x"), Peer("x", "a"), false)', 'ExpectPeer(Peer("z"), Peer("x", "a"), false)'])
pods = P("x/a", "x/b", "y/a")
simple("pod-selector-match-expressions", "should enforce policy based on PodSelector with MatchExpressions", pods, 80, T,
       [pol("x-a-allows-x-b", "x", A, ingress=[{"from": [{"podSelector": sel(exprs=[expr("pod", "In", ["b"])])}]}])],
       ['ExpectAllIngress("x/a", false)', 'Expect("x/b", "x/a", true)'])
pods = P("x/a", "x/b", "y/a", "z/a")
simple("namespace-selector-match-expressions", "should enforce policy based on NamespaceSelector with MatchExpressions", pods, 80, T,
       [pol("allow-ns-y-match-selector", "x", A, ingress=[{"from": [{"namespaceSelector": sel(exprs=[expr(NS, "In", ["y"])])}]}])],
       ['ExpectPeer(Peer("x"), Peer("x", "a"), false)', 'ExpectPeer(Peer("z"), Peer("x", "a"), false)'])
pods = P("x/a", "x/b", "x/c", "y/a")
simple("pod-selector-or-namespace-selector", "should enforce policy based on PodSelector or NamespaceSelector", pods, 80, T,
       [pol("allow-ns-y-match-selector", "x", A, ingress=[{"from": [{"namespaceSelector": sel(exprs=[expr(NS, "NotIn", ["x"])])}, pod_is("b")]}])],
       ['Expect("x/a", "x/a", false)', 'Expect("x/c", "x/a", false)'])
pods = P("x/a", "x/b", "y/a", "y/b", "z/b")
simple("pod-selector-and-namespace-selector", "should enforce policy based on PodSelector and NamespaceSelector", pods, 80, T,
       [pol("allow-ns-y-podselector-and-nsselector", "x", A,
            ingress=[{"from": [{"namespaceSelector": sel(exprs=[expr(NS, "NotIn", ["x"])]), "podSelector": sel({"pod": "b"})}]}])],
       ['ExpectAllIngress("x/a", false)', 'Expect("y/b", "x/a", true)', 'Expect("z/b", "x/a", true)'])
pods = P("x/a", "x/b", "y/a", "y/b", "y/c")
simple("multiple-pod-and-namespace-selectors", "should enforce policy based on Multiple PodSelectors and NamespaceSelectors", pods, 80, T,
       [pol("allow-ns-y-z-pod-b-c", "x", A,
            ingress=[{"from": [{"namespaceSelector": sel(exprs=[expr(NS, "NotIn", ["x"])]),
                                "podSelector": sel(exprs=[expr("pod", "In", ["b", "c"])])}]}])],
       ['ExpectPeer(Peer("x"), Peer("x", "a"), false)', 'Expect("y/a", "x/a", false)'])
pods = P("x/a", "x/b", "x/c")
simple("any-pod-selectors", "should enforce policy based on any PodSelectors", pods, 80, T,
       [pol("allow-ns-x-pod-b-c", "x", A, ingress=[{"from": [pod_is("b"), pod_is("c")]}])],
       ['ExpectAllIngress("x/a", false)', 'Expect("x/b", "x/a", true)', 'Expect("x/c", "x/a", true)'])

pods = P("x/a", "x/b", "y/a", "y/b", "z/a")
allow81 = pol("allow-client-a-via-ns-selector", "x", A, ingress=[{"from": [ns_is("y")], "ports": [{"port": 81, "protocol": T}]}])
allow80 = pol("allow-client-a-via-ns-selector-80", "x", A, ingress=[{"from": [ns_is("y")], "ports": [{"port": 80, "protocol": T}]}])
ALLOW = ['ExpectPeer(Peer("x"), Peer("x", "a"), false)', 'ExpectPeer(Peer("y"), Peer("x", "a"), true)', 'ExpectPeer(Peer("z"), Peer("x", "a"), false)']
case("stacked-policies", "should enforce multiple, stacked policies with overlapping podSelectors", pods, [80, 81], [T], [
    step([allow81], [probe(pods, 81, T, ALLOW), probe(pods, 80, T, ['ExpectAllIngress("x/a", false)'])], what="a policy for port 81"),
    step([allow81, allow80], [probe(pods, 80, T, ALLOW)], what="a second policy unblocks port 80"),
])
pods = P("x/a", "x/b", "y/a")
case("allow-all", "should support allow-all policy", pods, [80, 81], [T], [
    step([pol("allow-all", "x", {}, ingress=[{}])], [probe(pods, 80, T, []), probe(pods, 81, T, [])])])
case("ingress-named-port", "should allow ingress access on one named port", pods, [80, 81], [T], [
    step([pol("allow-all", "x", {}, ingress=[{"ports": [{"port": "serve-81-tcp"}]}])],
         [probe(pods, 81, T, []), probe(pods, 80, T, ['ExpectPeer(Peer(), Peer("x"), false)'])])])
pods = P("x/a", "x/b", "y/a", "z/a")
case("ingress-from-namespace-named-port", "should allow ingress access from namespace on one named port", pods, [80, 81], [T], [
    step([pol("allow-client-a-via-ns-selector-80", "x", A, ingress=[{"from": [ns_is("y")], "ports": [{"port": "serve-80-tcp", "protocol": T}]}])],
         [probe(pods, 80, T, ['ExpectPeer(Peer("x"), Peer("x", "a"), false)', 'ExpectPeer(Peer("z"), Peer("x", "a"), false)']),
          probe(pods, 81, T, ['ExpectAllIngress("x/a", false)'])])])
pods = P("x/a", "y/a")
case("egress-named-port", "should allow egress access on one named port", pods, [80, 81], [T], [
    step([pol("allow-egress", "x", {}, egress=[{"ports": [{"port": "serve-80-tcp"}]}])],
         [probe(pods, 80, T, []), probe(pods, 81, T, ['ExpectPeer(Peer("x"), Peer(), false)'])])])
case("updated-policy", "should enforce updated policy", pods, [81], [T], [
    step([pol("allow-all-mutate-to-deny-all", "x", {}, ingress=[{}])], [probe(pods, 81, T, [])], what="allow all"),
    step([pol("allow-all-mutate-to-deny-all", "x", {}, ingress=[])], [probe(pods, 81, T, ['ExpectPeer(Peer(), Peer("x"), false)'])], what="updated to deny all"),
])
p = pol("allow-client-a-via-ns-selector", "x", A, ingress=[{"from": [{"namespaceSelector": sel({"ns2": "updated"})}]}])
case("updated-namespace", "should allow ingress access from updated namespace", pods, [80], [T], [
    step([p], [probe(pods, 80, T, ['ExpectAllIngress("x/a", false)'])]),
    step([p], [probe(pods, 80, T, ['ExpectAllIngress("x/a", false)', 'ExpectPeer(Peer("y"), Peer(), true)'])],
         what="namespace y labelled ns2=updated", namespace_labels={"y": {"ns2": "updated"}}),
])
pods = P("x/a", "x/b")
p = pol("allow-client-a-via-pod-selector", "x", A, ingress=[{"from": [{"podSelector": sel({"pod": "b", "pod2": "updated"})}]}])
case("updated-pod", "should allow ingress access from updated pod", pods, [80], [T], [
    step([p], [probe(pods, 80, T, ['ExpectAllIngress("x/a", false)'])]),
    step([p], [probe(pods, 80, T, ['ExpectAllIngress("x/a", false)', 'Expect("x/b", "x/a", true)'])],
         what="pod x/b labelled pod2=updated", pod_labels={"x/b": {"pod": "b", "pod2": "updated"}}),
])
pods = P("x/a", "x/b", "y/a", "z/a")
simple("deny-ingress-other-namespaces", "should deny ingress from pods on other namespaces", pods, 80, T,
       [pol("deny-empty-policy", "x", {}, ingress=[{"from": [{"podSelector": {}}]}])],
       ['ExpectPeer(Peer("y"), Peer("x"), false)', 'ExpectPeer(Peer("z"), Peer("x"), false)'])
pods = P("x/a", "y/a")
p = pol("deny-ingress-via-label-selector", "x", sel({"target": "isolated"}), ingress=[])
case("deny-ingress-updated-pod", "should deny ingress access to updated pod", pods, [80], [T], [
    step([p], [probe(pods, 80, T, [])]),
    step([p], [probe(pods, 80, T, ['ExpectAllIngress("x/a", false)'])], what="pod x/a labelled target=isolated",
         pod_labels={"x/a": {"target": "isolated"}}),
])
pods = P("x/a", "x/b", "y/a")
simple("deny-egress-pod-selector", "should deny egress from pods based on PodSelector", pods, 80, T,
       [pol("deny-egress-pod-a", "x", A, egress=[])], ['ExpectAllEgress("x/a", false)'])
simple("deny-egress-namespace", "should deny egress from all pods in a namespace", pods, 80, T,
       [pol("deny-egress-ns-x", "x", {}, egress=[])], ['ExpectPeer(Peer("x"), Peer(), false)'])
pods = P("x/a", "x/b", "x/c", "y/a")
case("ingress-and-egress-together", "should work with Ingress, Egress specified together", pods, [80, 81], [T], [
    step([pol("allow-client-a-via-pod-selector", "x", A, ingress=[{"from": [pod_is("b")]}], egress=[{"ports": [{"port": 80}]}], types=["Egress", "Ingress"])],
         [probe(pods, 80, T, ['ExpectAllIngress("x/a", false)', 'Expect("x/b", "x/a", true)']),
          probe(pods, 81, T, ['ExpectAllIngress("x/a", false)', 'ExpectAllEgress("x/a", false)', 'Expect("x/b", "x/a", true)'])])])
pods = P("x/a", "y/a", "y/b")
xa = {"namespaceSelector": sel({NS: "x"}), "podSelector": sel({"pod": "a"})}
ya = {"namespaceSelector": sel({NS: "y"}), "podSelector": sel({"pod": "a"})}
simple("client-side-egress-deny", "should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
       pods, 80, T,
       [pol("allow-to-ns-y-pod-a", "x", A, egress=[{"to": [ya]}]),
        pol("allow-from-xa-on-ya-match-selector", "y", A, ingress=[{"from": [xa]}]),
        pol("allow-from-xa-on-yb-match-selector", "y", sel({"pod": "b"}), ingress=[{"from": [xa]}])],
       ['ExpectPeer(Peer("x", "a"), Peer(), false)', 'ExpectPeer(Peer(), Peer("y", "a"), false)',
        'ExpectPeer(Peer("x", "a"), Peer("y", "a"), true)', 'ExpectPeer(Peer(), Peer("y", "b"), false)'])
simple("egress-pod-and-namespace-selector", "should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
       pods, 80, T, [pol("allow-to-ns-y-pod-a", "x", A, egress=[{"to": [ya]}])],
       ['ExpectAllEgress("x/a", false)', 'Expect("x/a", "y/a", true)'])
pods = P("x/a", "y/a")
case("ingress-any-port-one-protocol", "should enforce ingress policy allowing any port traffic to a server on a specific protocol", pods, [80], [T, "UDP"], [
    step([pol("allow-ingress-by-proto", "x", A, ingress=[{"ports": [{"protocol": T}]}])],
         [probe(pods, 80, T, []), probe(pods, 80, "UDP", ['ExpectPeer(Peer(), Peer("x", "a"), false)'])])])
p80 = pol("allow-ingress-port-80", "x", {}, ingress=[{"ports": [{"port": 80}]}])
case("ingress-allow-all-precedence", "should enforce multiple ingress policies with ingress allow-all policy taking precedence", pods, [81], [T], [
    step([p80], [probe(pods, 81, T, ['ExpectPeer(Peer(), Peer("x"), false)'])], what="only port 80"),
    step([p80, pol("allow-ingress", "x", {}, ingress=[{}])], [probe(pods, 81, T, [])], what="allowing all ports"),
])
e80 = pol("allow-egress-port-80", "x", {}, egress=[{"ports": [{"port": 80}]}])
case("egress-allow-all-precedence", "should enforce multiple egress policies with egress allow-all policy taking precedence", pods, [81], [T], [
    step([e80], [probe(pods, 81, T, ['ExpectPeer(Peer("x"), Peer(), false)'])], what="only port 80"),
    step([e80, pol("allow-egress", "x", {}, egress=[{}])], [probe(pods, 81, T, [])], what="allowing all ports"),
])
case("policies-deleted", "should stop enforcing policies after they are deleted", pods, [80], [T], [
    step([pol("deny-all", "x", {}, ingress=[], egress=[])],
         [probe(pods, 80, T, ['ExpectPeer(Peer("x"), Peer(), false)', 'ExpectPeer(Peer(), Peer("x"), false)'])], what="deny all in and out of x"),
    step([], [probe(pods, 80, T, [])], what="policies deleted"),
])
IPS = {"x/a": "10.1.0.1", "x/b": "10.1.0.2", "x/c": "10.1.0.3", "y/a": "10.2.0.1", "y/b": "10.2.0.2"}
pods = P("x/a", "y/a", "y/b")
simple("egress-cidr", "should allow egress access to server in CIDR block", pods, 80, T,
       [pol("allow-client-a-via-cidr-egress-rule", "x", A, egress=[{"to": [{"ipBlock": {"cidr": "10.2.0.2/32"}}]}])],
       ['ExpectAllEgress("x/a", false)', 'Expect("x/a", "y/b", true)'], ips={k: IPS[k] for k in pods})
pods = P("x/a", "x/b", "x/c")
except_pol = pol("allow-client-a-via-cidr-egress-rule", "x", A, egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/4", "except": ["10.1.0.2/32"]}}]}])
simple("egress-cidr-except", "should enforce except clause while egress access to server in CIDR block", pods, 80, T,
       [except_pol], ['Expect("x/a", "x/b", false)'], ips={k: IPS[k] for k in pods})
case("cidr-and-except-overlap", "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed", pods, [80], [T], [
    step([except_pol], [probe(pods, 80, T, ['Expect("x/a", "x/b", false)'])], what="x/b's address excepted"),
    step([pol("allow-client-a-via-cidr-egress-rule", "x", A, egress=[{"to": [{"ipBlock": {"cidr": "10.1.0.2/32"}}]}])],
         [probe(pods, 80, T, ['ExpectAllEgress("x/a", false)', 'Expect("x/a", "x/b", true)'])], what="the policy updated to allow x/b's address"),
], ips={k: IPS[k] for k in pods})
pods = P("x/a", "x/b", "y/a")
case("ingress-egress-independent", "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector", pods, [80], [T], [
    step([pol("allow-egress-for-target", "x", A, egress=[{}])], [probe(pods, 80, T, [])], what="egress of x/a allowed"),
    step([pol("allow-egress-for-target", "x", A, egress=[{}]), pol("deny-ingress-via-label-selector", "x", A, ingress=[])],
         [probe(pods, 80, T, ['ExpectAllIngress("x/a", false)'])], what="ingress of x/a denied"),
])
pods = P("x/a", "y/a")
simple("sctp-is-not-tcp", "should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP", pods, 81, T,
       [pol("deny-ingress", "x", {}, ingress=[]),
        pol("allow-only-sctp-ingress-on-port-81", "x", A, ingress=[{"ports": [{"port": 81, "protocol": "SCTP"}]}])],
       ['ExpectPeer(Peer(), Peer("x"), false)'])
simple("sctp-policy-isolates", "should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP", pods, 81, T,
       [pol("allow-only-sctp-ingress-on-port-80", "x", A, ingress=[{"ports": [{"port": 80, "protocol": "SCTP"}]}])],
       ['ExpectAllIngress("x/a", false)'])
simple("udp-is-not-tcp", "should not allow access by TCP when a policy specifies only UDP", pods, 81, T,
       [pol("allow-only-udp-ingress-on-port-81", "x", A, ingress=[{"ports": [{"port": 81, "protocol": "UDP"}]}])],
       ['ExpectAllIngress("x/a", false)'])
pods = P("x/a", "x/b", "y/a", "z/a")
simple("default-namespace-label-match-labels", "should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label", pods, 80, T,
       [pol("allow-client-a-via-ns-selector-for-immutable-ns-label", "x", A, ingress=[{"from": [ns_is("y")]}])],
       ['ExpectPeer(Peer("x"), Peer("x", "a"), false)', 'ExpectPeer(Peer("z"), Peer("x", "a"), false)'])
simple("default-namespace-label-match-expressions", "should enforce policy based on NamespaceSelector with MatchExpressions using default ns label", pods, 80, T,
       [pol("allow-ns-y-match-selector-for-immutable-ns-label", "x", A, egress=[{"to": [{"namespaceSelector": sel(exprs=[expr(NS, "NotIn", ["y"])])}]}])],
       ['ExpectPeer(Peer("x", "a"), Peer("y"), false)'])

os.makedirs(OUT, exist_ok=True)
class D(yaml.SafeDumper): pass
def str_rep(d, s):
    if "\n" in s: return d.represent_scalar("tag:yaml.org,2002:str", s, style="|")
    if s.lower() in ("y", "n", "yes", "no", "on", "off"):
        return d.represent_scalar("tag:yaml.org,2002:str", s, style='"')
    return d.represent_scalar("tag:yaml.org,2002:str", s)
D.add_representer(str, str_rep)
D.ignore_aliases = lambda self, data: True
def list_rep(d, l):
    flow = all(not isinstance(x, (dict, list)) and len(str(x)) < 24 for x in l)
    return d.represent_sequence("tag:yaml.org,2002:seq", l, flow_style=flow)
D.add_representer(list, list_rep)
for slug, c in cases:
    text = yaml.dump(c, Dumper=D, sort_keys=False, width=120, default_flow_style=None)
    head = (f"# e2e: {c['context']} {c['name']}\n"
            f"# source: {c['source']}\n"
            "# The expected tables are the e2e test's reachability (its Expect* calls, listed under e2e,\n"
            "# applied to an all-true table as reachability.go does); the suite ignores loopback cells, this test compares them too.\n")
    open(os.path.join(OUT, slug + ".yaml"), "w").write(head + text)
print(len(cases))
