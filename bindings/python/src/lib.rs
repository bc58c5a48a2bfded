#![doc = include_str!("../README.md")]

mod error;
mod input;
mod keystore;
mod module;
mod results;
