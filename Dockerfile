# tproxy in a container: Node.js LTS, the package as `npm pack` makes it (the README's install
# steps), nft and ip, run as a non-root user that holds CAP_NET_ADMIN and CAP_NET_BIND_SERVICE and
# nothing else, as ambient capabilities (so the TCP workers and the nft / ip children have them).
#
#   docker build -t tproxy .
#   docker run --rm --network host --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_BIND_SERVICE \
#     -v /etc/tproxy:/etc/tproxy:ro tproxy run --config /etc/tproxy/tproxy.yaml
#
# How the capabilities reach a non-root user: the runtime puts NET_ADMIN and NET_BIND_SERVICE in the
# bounding set (--cap-add, or the pod's securityContext), but a non-root process gets none of them
# at exec. /usr/local/lib/tproxy/caps is a copy of setpriv with those two as file capabilities,
# executable by the tproxy group only; the entrypoint runs it to raise them as ambient capabilities
# and exec tproxy. File capabilities need no_new_privs off: no --security-opt no-new-privileges,
# and allowPrivilegeEscalation: true in Kubernetes (deploy/kubernetes/daemonset.yaml).
# Host network: TPROXY works on the host's own traffic path (docs/gateways.md).
#
# Not built or run on the machines this was written on (no container runtime there): the build
# steps are the README's install steps (test/package/manifests.test.ts checks that) and the
# capability handover was tried with setpriv outside a container (test/package/container-caps.root.test.ts).

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY scripts ./scripts
COPY src ./src
COPY packaging ./packaging
# README, Install: "npm pack in a clone" (prepare builds dist/ and the man page).
RUN npm ci --ignore-scripts && npm pack && mv tproxy-*.tgz /tproxy.tgz

FROM node:24-bookworm-slim
# nft and ip: the rules and the policy routing; setpriv (util-linux) and setcap: the capability handover.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iproute2 libcap2-bin util-linux \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /tproxy.tgz /tmp/tproxy.tgz
# README, Install: npm install -g ./tproxy-VERSION.tgz
RUN npm install -g /tmp/tproxy.tgz && rm /tmp/tproxy.tgz && npm cache clean --force
RUN groupadd --system --gid 10001 tproxy \
 && useradd --system --uid 10001 --gid tproxy --no-create-home --shell /usr/sbin/nologin tproxy \
 && install -d -m 0755 /usr/local/lib/tproxy \
 && install -m 0750 -o root -g tproxy /usr/bin/setpriv /usr/local/lib/tproxy/caps \
 && setcap cap_net_admin,cap_net_bind_service+ep /usr/local/lib/tproxy/caps \
 && install -d -m 0700 -o tproxy -g tproxy /run/tproxy
USER tproxy:tproxy
# The metrics endpoint (/metrics, /healthz, /readyz) at metrics.listen; the admin socket (tproxy status, drain) goes in /run/tproxy.
EXPOSE 9464
ENTRYPOINT ["/usr/local/lib/tproxy/caps", "--inh-caps=+net_admin,+net_bind_service", "--ambient-caps=+net_admin,+net_bind_service", "--", "tproxy"]
CMD ["run", "--config", "/etc/tproxy/tproxy.yaml"]
