# Builds the Quilt binaries (quiltd, quilt, quilt-shim) from this checkout,
# and the minimal container image of ./image.nix.
#
#   nix-build nix -A quilt     # result/bin/{quiltd,quilt,quilt-shim}
#   nix-build nix -A image     # result/rootfs.tar.gz
#
# Needs a nixpkgs whose Rust is at least the workspace's rust-version.
{
  pkgs ? import <nixpkgs> { },
}:

let
  inherit (pkgs) lib;
  workspace = (builtins.fromTOML (builtins.readFile ../Cargo.toml)).workspace;

  # The workspace without build output, VCS data or these expressions (so
  # editing them does not rebuild the binaries).
  src = lib.cleanSourceWith {
    src = ../.;
    filter =
      path: type:
      let
        base = baseNameOf path;
      in
      !(
        (type == "directory" && builtins.elem base [ "target" ".git" "nix" ])
        || lib.hasPrefix "result" base
      );
  };

  quilt = pkgs.rustPlatform.buildRustPackage {
    pname = "quilt";
    version = workspace.package.version;
    inherit src;
    cargoLock.lockFile = ../Cargo.lock;

    # The three packages with binaries; quiltd finds quilt-shim next to itself.
    cargoBuildFlags = [
      "--package"
      "quilt-server"
      "--package"
      "quilt-cli"
      "--package"
      "quilt-runtime"
    ];

    # The test suite needs root, cgroups and namespaces: not in the sandbox.
    doCheck = false;

    meta = {
      description = "Linux container engine for AI agents";
      license = lib.licenses.asl20;
      platforms = lib.platforms.linux;
      mainProgram = "quilt";
    };
  };
in
{
  inherit quilt;
  image = import ./image.nix { inherit pkgs; };
}
