import type { ChannelOrderStatus } from '../../generated/prisma/enums';

/** Channel order moves. closed -> paid: the channel's word wins if a payment beat our close. */
export const channelOrderTransitions: Record<ChannelOrderStatus, readonly ChannelOrderStatus[]> = {
  created: ['paid', 'closed'],
  closed: ['paid'],
  paid: [],
};

export function channelOrderSourcesOf(to: ChannelOrderStatus): ChannelOrderStatus[] {
  return (Object.keys(channelOrderTransitions) as ChannelOrderStatus[]).filter((f) => channelOrderTransitions[f].includes(to));
}
