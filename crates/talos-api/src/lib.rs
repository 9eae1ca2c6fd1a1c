//! Talos's `machine.MachineService`, as much of it as ironbay calls: the generated tonic client
//! (the appliance's bootstrap step) and server (the Talos node stand-in in the tests).

#![allow(clippy::all, clippy::pedantic)]

pub mod machine {
    tonic::include_proto!("machine");
}
