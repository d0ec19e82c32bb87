//! The committed CRD YAML is exactly what the Rust types generate.

use std::path::Path;

#[test]
fn committed_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/crd");
    for (file, crd) in snoopy_operator::crd::all() {
        let want = snoopy_operator::crd::to_yaml(&crd).unwrap();
        let path = dir.join(file);
        let have = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        assert!(
            have == want,
            "{} differs from the Rust types: run `cargo run -p snoopy-operator -- crdgen --out snoopy-operator/config/crd` and commit",
            path.display()
        );
    }
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    for (file, _) in snoopy_operator::crd::all() {
        assert!(
            kustomization.contains(file),
            "config/crd/kustomization.yaml does not list {file}"
        );
    }
}
