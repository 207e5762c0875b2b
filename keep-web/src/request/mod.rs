//! Request basics, below everything else: the method, the headers keep-web reads (with
//! their limits), percent-encoding, and bodies (bounded, XML shape-checked).

pub mod body;
pub mod digest;
pub mod headers;
pub mod method;
pub mod url;
