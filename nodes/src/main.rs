fn main() {
    eprintln!("faultline-node: in progress");
    std::process::exit(255);
}
