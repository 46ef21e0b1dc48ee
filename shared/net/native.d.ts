// Minimal declarations for the two native modules the I/O shell uses (neither ships types).
// Only what shared/net/ calls is declared; see node_modules/{cap,raw-socket}/README.md.

declare module 'cap' {
  import type { EventEmitter } from 'node:events';

  export interface CapDeviceAddress {
    addr?: string;
    netmask?: string;
    broadaddr?: string;
    dstaddr?: string;
  }
  export interface CapDevice {
    name: string;
    description?: string;
    addresses: CapDeviceAddress[];
    flags?: string;
  }

  export class Cap extends EventEmitter {
    constructor();
    /**
     * Opens `device` (libpcap: snaplen 65535, promiscuous, immediate mode on Linux, non-blocking) and
     * returns the link type as a name: 'ETHERNET' | 'NULL' | 'RAW' | 'LINKTYPE_LINUX_SLL' |
     * 'IEEE802_11_RADIO' | 'Unknown linktype <DLT number>'. Each packet is copied into `buffer`.
     */
    open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
    close(): boolean;
    send(buffer: Buffer, nBytes?: number): void;
    on(event: 'packet', listener: (nbytes: number, truncated: boolean) => void): this;
    static findDevice(ip?: string): string | undefined;
    static deviceList(): CapDevice[];
  }
}

declare module 'raw-socket' {
  import type { EventEmitter } from 'node:events';

  export interface CreateSocketOptions {
    addressFamily?: number;
    protocol?: number;
    bufferSize?: number;
    generateChecksums?: boolean;
    checksumOffset?: number;
  }

  export class Socket extends EventEmitter {
    readonly recvPaused: boolean;
    readonly sendPaused: boolean;
    send(
      buffer: Buffer,
      offset: number,
      length: number,
      address: string,
      afterCallback: (error: Error | null, bytes: number) => void,
    ): this;
    send(
      buffer: Buffer,
      offset: number,
      length: number,
      address: string,
      beforeCallback: () => void,
      afterCallback: (error: Error | null, bytes: number) => void,
    ): this;
    setOption(level: number, option: number, value: number): void;
    setOption(level: number, option: number, value: Buffer, length: number): void;
    getOption(level: number, option: number, value: Buffer, length: number): number;
    pauseRecv(): this;
    resumeRecv(): this;
    pauseSend(): this;
    resumeSend(): this;
    close(): this;
  }

  export const AddressFamily: { IPv4: number; IPv6: number };
  export const Protocol: { None: number; ICMP: number; TCP: number; UDP: number; ICMPv6: number };
  export const SocketLevel: Record<string, number>;
  export const SocketOption: Record<string, number>;
  export function createSocket(options?: CreateSocketOptions): Socket;
}
