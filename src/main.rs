fn main() {
    print!("{}", trailkeeper::api::crds_yaml().unwrap_or_default());
}
