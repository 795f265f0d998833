"""CloudFormation's side of a custom resource, for tests: the pre-signed ResponseURL, as a real HTTP server on
127.0.0.1 that records the PUTs it receives, and the request events CloudFormation sends."""

import contextlib
import http.server
import json

from tests.servers import serving


class _ResponseUrlHandler(http.server.BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def response_url_server():
    """The server, with ``.url`` (a pre-signed-looking URL), ``.received`` (the PUTs: path, headers, JSON body)
    and ``.statuses`` (statuses to answer the next PUTs with, 200 once they run out)."""
    with serving(_ResponseUrlHandler) as server:
        server.received = []
        server.statuses = []
        server.url = f"http://127.0.0.1:{server.server_address[1]}/stack-bucket/response?X-Amz-Signature=abc"
        yield server


def custom_resource_event(url, request_type, **fields):
    """A custom resource request as CloudFormation sends it to the function of its ServiceToken."""
    return {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fma-deploy:live",
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/fma/5b6f2a30-0000-11ef-8000-0a1b2c3d4e5f",
        "RequestId": "6f1e2d3c-request",
        "LogicalResourceId": "DeployOperations",
        "ResourceType": "Custom::DeployOperations",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fma-deploy:live",
            "CodeVersion": "arn:aws:lambda:us-east-1:123456789012:function:fma-deploy:7",
        },
        **fields,
    }
