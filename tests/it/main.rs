mod compute_purity;
mod losses_reference;
mod properties;
