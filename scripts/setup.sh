#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) for tproxy: the nftables, iproute2, procps (sysctl, for
# the lab's router) and iptables packages when their binaries are missing (iptables: for the
# iptables backend and its tests, both the legacy and the nft flavour), dnsmasq-base (the binary only, no service; the UDP tests run it as a resolver
# in a lab namespace), tcpdump (the captures that prove what the proxy puts on the wire), zsh and fish (the completion
# tests parse and run their scripts), haproxy, nginx-light and curl (the mmproxy tests: HAProxy sends
# PROXY headers, nginx logs the client it sees; each run from a config in a temp dir), the npm
# packages, and the build. Safe to run again.
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
have haproxy || missing+=(haproxy)
have nginx || missing+=(nginx-light)
have curl || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: ${missing[*]} missing and not root: install them with apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]} from apt (their binaries are missing)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: nft, ip, sysctl, iptables, dnsmasq, tcpdump, zsh and fish present"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci runs the package's prepare script, which is the build.
  echo "setup: installing npm packages (npm ci) and building (tsc, man page)"
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "setup: npm packages up to date; building (tsc, man page)"
  npm run --silent build
fi
