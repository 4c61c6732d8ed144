#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) for tproxy: the nftables, iproute2, procps (sysctl, for
# the lab's router) and iptables packages when their binaries are missing (iptables: for the
# iptables backend and its tests, both the legacy and the nft flavour), dnsmasq-base (the binary only, no service; the UDP tests run it as a resolver
# in a lab namespace), tcpdump (the captures that prove what the proxy puts on the wire), zsh and fish (the completion
# tests parse and run their scripts), dante-server, tinyproxy, nginx-light and haproxy (the binaries the outbound and
# mmproxy tests run in a lab namespace as the real SOCKS5, HTTP CONNECT, PROXY-protocol/TLS servers and load balancer; no service is started:
# the tests start each in the foreground from a temp dir), bird2 (BIRD 2: the routing daemon of the multi-gateway lab, BGP
# and BFD between the edge and the gateways, one per namespace from a temp dir), openssl (their throwaway certificate and password hash),
# chromium (the dashboard tests drive it headless through playwright-core, inside a lab namespace),
# gcc and libc6-dev (the bench's C reference relay, --reference-relay, which a root test compiles and runs),
# the npm packages, and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

missing=()
have nft || missing+=(nftables)
have ip || missing+=(iproute2)
have sysctl || missing+=(procps)
have dnsmasq || missing+=(dnsmasq-base)
have tcpdump || missing+=(tcpdump)
have iptables-legacy-restore && have iptables-nft-restore || missing+=(iptables)
have zsh || missing+=(zsh)
have fish || missing+=(fish)
have danted || missing+=(dante-server)
have tinyproxy || missing+=(tinyproxy)
have nginx || missing+=(nginx-light)
have haproxy || missing+=(haproxy)
have openssl || missing+=(openssl)
have curl || missing+=(curl)
have chromium || missing+=(chromium)
have bird && have birdc || missing+=(bird2)
have cc || missing+=(gcc libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: ${missing[*]} missing and not root: install them with apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]} from apt (their binaries are missing)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # danted, tinyproxy, nginx, haproxy and bird come with services that the packages start on install: a policy-rc.d
  # that refuses (exit 101, the Debian convention) keeps them stopped; it is removed again unless the
  # machine had its own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: nft, ip, sysctl, iptables, dnsmasq, tcpdump, zsh, fish, danted, tinyproxy, nginx, haproxy, bird, openssl, curl and chromium present"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci runs the package's prepare script, which is the build.
  echo "setup: installing npm packages (npm ci) and building (tsc, man page)"
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "setup: npm packages up to date; building (tsc, man page)"
  npm run --silent build
fi
