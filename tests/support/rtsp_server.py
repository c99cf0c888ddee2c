#!/usr/bin/python3
"""A real RTSP server for vigil's end-to-end tests: GStreamer's gst-rtsp-server (Debian's
gir1.2-gst-rtsp-server-1.0 + python3-gi). Run with Debian's /usr/bin/python3, not pyenv's.

Mounts (each a live encoder fed by videotestsrc, shared between clients):
  /h264        H.264 High, WIDTHxHEIGHT @ FPS, key frame every GOP frames
  /h265        H.265 Main, same geometry
  /h264-small  H.264 at 640x360 (below the default HD requirement)
  /file        the file given with --file (MP4 with H.264 or H.265), looped; for load tests

Prints "READY <port>" on stdout once listening. Credentials (--user/--password) require auth on
every mount; --auth picks basic or digest. Stops on SIGTERM/SIGINT.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def live_pipeline(encoder, payloader, width, height, fps, gop, kbps):
    src = (
        f"videotestsrc is-live=true pattern=ball ! "
        f"video/x-raw,width={width},height={height},framerate={fps}/1 ! "
        "clockoverlay ! videoconvert ! "
    )
    if encoder == "x264enc":
        enc = (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} "
            f"bitrate={kbps} ! video/x-h264,profile=high ! "
        )
    else:
        enc = (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} "
            f"bitrate={kbps} ! "
        )
    return f"( {src}{enc}{payloader} name=pay0 pt=96 config-interval=-1 )"


def file_pipeline(path):
    return (
        f"( filesrc location={path} ! qtdemux name=d d.video_0 ! queue ! parsebin ! "
        "rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=int, default=25)
    parser.add_argument("--kbps", type=int, default=2000)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--auth", choices=["basic", "digest"], default="digest")
    parser.add_argument("--file")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_service(str(args.port))
    mounts = server.get_mount_points()

    def add(path, launch):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        if args.user:
            perms = GstRtspServer.RTSPPermissions()
            perms.add_permission_for_role("viewer", "media.factory.access", True)
            perms.add_permission_for_role("viewer", "media.factory.construct", True)
            factory.set_permissions(perms)
        mounts.add_factory(path, factory)

    add("/h264", live_pipeline("x264enc", "rtph264pay", args.width, args.height, args.fps, args.gop, args.kbps))
    add("/h265", live_pipeline("x265enc", "rtph265pay", args.width, args.height, args.fps, args.gop, args.kbps))
    add("/h264-small", live_pipeline("x264enc", "rtph264pay", 640, 360, args.fps, args.gop, 800))
    if args.file:
        add("/file", file_pipeline(args.file))

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        if args.auth == "basic":
            basic = GstRtspServer.RTSPAuth.make_basic(args.user, args.password)
            auth.add_basic(basic, token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, args.password, token)
        server.set_auth(auth)

    if server.attach(None) == 0:
        print("failed to attach the RTSP server", file=sys.stderr)
        return 1
    print(f"READY {server.get_bound_port()}", flush=True)

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
