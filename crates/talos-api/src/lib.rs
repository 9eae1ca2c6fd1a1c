//! Talos's `machine.MachineService`, as much of it as ironbay calls: the generated tonic client
//! (the appliance's bootstrap step) and server (the Talos node stand-in in the tests).

#![allow(clippy::all, clippy::pedantic)]

pub mod machine {
    tonic::include_proto!("machine");
}

/// A gRPC code's name as grpc-go (and so Talos) prints it: what step logs and the stand-in's call
/// log show, so an operator reads the same word talosctl would print.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}
