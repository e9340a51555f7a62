# A minimal container image for Quilt: a static busybox with a link per
# applet, a few /etc files and the usual empty directories, packed as a
# rootfs tarball (Quilt runs any absolute path to a .tar.gz as an image).
#
#   nix-build nix/image.nix
#   quilt run "$(readlink -f result)/rootfs.tar.gz" sh -c 'echo hello'
{
  pkgs ? import <nixpkgs> { },
}:

let
  busybox = pkgs.pkgsStatic.busybox;
in
pkgs.runCommand "quilt-busybox-rootfs"
  {
    nativeBuildInputs = [
      pkgs.gnutar
      pkgs.gzip
    ];
  }
  ''
    root=$PWD/rootfs
    mkdir -p $root/bin $root/sbin $root/usr/bin $root/usr/sbin \
      $root/etc $root/root $root/home $root/tmp $root/var/tmp \
      $root/proc $root/sys $root/dev $root/run
    chmod 1777 $root/tmp $root/var/tmp
    chmod 0700 $root/root

    install -m 0755 ${busybox}/bin/busybox $root/bin/busybox
    # Each applet where busybox says it belongs (bin/sh, usr/bin/env, ...).
    for applet in $($root/bin/busybox --list-full); do
      link=$root/''${applet#/}
      if [ -e "$link" ] || [ -L "$link" ]; then
        continue
      fi
      mkdir -p "$(dirname "$link")"
      ln -s /bin/busybox "$link"
    done
    test -L $root/bin/sh

    cat > $root/etc/passwd <<'END'
    root:x:0:0:root:/root:/bin/sh
    nobody:x:65534:65534:nobody:/nonexistent:/bin/false
    END
    cat > $root/etc/group <<'END'
    root:x:0:
    tty:x:5:
    nogroup:x:65534:
    END
    cat > $root/etc/shadow <<'END'
    root:*:0:0:99999:7:::
    nobody:*:0:0:99999:7:::
    END
    chmod 0600 $root/etc/shadow
    echo quilt > $root/etc/hostname
    cat > $root/etc/hosts <<'END'
    127.0.0.1 localhost
    ::1 localhost
    END
    echo 'hosts: files dns' > $root/etc/nsswitch.conf
    : > $root/etc/resolv.conf

    # Reproducible: fixed order, times and owners; gzip without a name or time.
    mkdir -p $out
    tar --sort=name --mtime=@1 --owner=0 --group=0 --numeric-owner \
      -C $root -cf - . | gzip -9n > $out/rootfs.tar.gz
  ''
