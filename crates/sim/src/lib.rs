//! Simulators for demos, tests and load: a synthetic city, RTSP cameras and GB/T 28181 devices.

pub mod city;
pub mod gb;
pub mod rtsp;
