extension Machine {
    /// Starts the control API on `config.devices.apiSocket`, if set, as a subscriber of the
    /// main event loop. (Owned by the control-API work.)
    func startAPI(on loop: EventLoop) throws {}
}
