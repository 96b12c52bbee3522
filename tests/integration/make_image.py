#!/usr/bin/env python3
"""Writes an OCI image layout tarball of a busybox root filesystem, for `ctr images import`
without a registry: busybox-static with a link per applet, /etc/passwd and /etc/group.

    make_image.py BUSYBOX NAME OUT.tar
    make_image.py --rootfs BUSYBOX OUT.tar    (the root filesystem alone, for `docker import`)
"""
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile


def add(tar, name, data=None, mode=0o644, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    if kind == tarfile.SYMTYPE:
        info.linkname = link
        tar.addfile(info)
    elif kind == tarfile.DIRTYPE:
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def blob(out, data):
    digest = hashlib.sha256(data).hexdigest()
    add(out, "blobs/sha256/" + digest, data)
    return "sha256:" + digest, len(data)


def main():
    if sys.argv[1] == "--rootfs":
        busybox, path = sys.argv[2:4]
        with open(path, "wb") as f:
            f.write(rootfs_tar(busybox))
        return
    busybox, name, path = sys.argv[1:4]
    raw = rootfs_tar(busybox)
    gz = gzip.compress(raw, mtime=0)
    write_image(raw, gz, name, path)


def rootfs_tar(busybox):
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True,
                             check=True).stdout.split()
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc",
                  "sys", "dev", "data"]:
            add(t, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        add(t, "bin/busybox", open(busybox, "rb").read(), mode=0o755)
        for applet in applets:
            if applet == "bin/busybox":
                continue
            depth = applet.count("/")
            add(t, applet, kind=tarfile.SYMTYPE, link="../" * depth + "bin/busybox")
        add(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
        add(t, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return layer.getvalue()


def write_image(raw, gz, name, path):
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    }
    with tarfile.open(path, "w") as out:
        add(out, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        layer_digest, layer_size = blob(out, gz)
        config_digest, config_size = blob(out, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": layer_size}],
        }
        manifest_digest, manifest_size = blob(out, json.dumps(manifest).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest, "size": manifest_size,
                "annotations": {"io.containerd.image.name": name,
                                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]},
            }],
        }
        add(out, "index.json", json.dumps(index).encode())


if __name__ == "__main__":
    main()
