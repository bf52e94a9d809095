//! Run the placement bench: `cargo run --release -p stratus-placement --example
//! bench_candidates -- [providers] [requests] [concurrency]`.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let providers = args.first().copied().unwrap_or(10_000);
    let requests = args.get(1).copied().unwrap_or(2_000);
    let concurrency = args.get(2).copied().unwrap_or(8);
    println!("{}", stratus_placement::bench::run(providers, requests, concurrency).await?);
    Ok(())
}
