fn main() -> std::process::ExitCode {
    keep_cli::main()
}
