from inference.energy import thread_cpu_us


class MeteringClockMiddleware:
    """Outermost middleware: stamps the request's starting thread CPU time, so metering
    charges the whole request (framework included), not just the model call. Timing
    only the inference undercounts about 4x for small models."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.meter_cpu_start_us = thread_cpu_us()
        return self.get_response(request)
