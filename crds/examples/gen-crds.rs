//! Prints the CustomResourceDefinitions generated from the Rust types (crds/src/crd.rs); the
//! chart's `charts/verdict/crds/verdict-crds.yaml` is this output (a test checks it).

fn main() {
    print!("{}", verdict_crds::crd::crds_yaml());
}
