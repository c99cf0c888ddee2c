//! RTSP puller (retina): one supervised task per camera feeding the segment store.
