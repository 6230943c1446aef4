//! Declares `cfg(madsim)` (set through `RUSTFLAGS="--cfg madsim"` for the
//! simulated build) so rustc's unexpected-cfg lint knows it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(madsim)");
}
