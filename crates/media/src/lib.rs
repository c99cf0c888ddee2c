//! Sans-IO media: H.264/H.265 NAL units and SPS, RTP reassembly, MPEG-PS demux, fragmented MP4 writer and reader.
